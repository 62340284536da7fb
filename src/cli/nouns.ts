import type { Noun } from './noun.ts';
import { firewallNoun } from './nouns/firewall.ts';
import { imageNoun } from './nouns/image.ts';
import { machineTypeNoun } from './nouns/machine-type.ts';
import { networkNoun } from './nouns/network.ts';
import { nodeNoun } from './nouns/node.ts';
import { projectNoun } from './nouns/project.ts';
import { siteNoun } from './nouns/site.ts';
import { vmNoun } from './nouns/vm.ts';

/** Every noun of `crowd <noun> <verb>`, one per kind, in the order help lists them. */
export const nouns: readonly Noun[] = [projectNoun, siteNoun, nodeNoun, imageNoun, machineTypeNoun, networkNoun, firewallNoun, vmNoun];
