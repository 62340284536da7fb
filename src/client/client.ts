import { kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import type { AuditEntry, WatchEvent } from '../api/wire.ts';
import type { Firewall, FirewallCreate } from '../api/kinds/firewall.ts';
import type { Image, ImageCreate } from '../api/kinds/image.ts';
import type { MachineType, MachineTypeCreate } from '../api/kinds/machine-type.ts';
import type { Network, NetworkCreate } from '../api/kinds/network.ts';
import type { Node, NodeCreate } from '../api/kinds/node.ts';
import type { Project, ProjectCreate } from '../api/kinds/project.ts';
import type { Site, SiteCreate } from '../api/kinds/site.ts';
import type { Vm, VmCreate } from '../api/kinds/vm.ts';
import { ResourceClient } from './resource-client.ts';
import { Transport, type ClientOptions } from './transport.ts';
import { watchEvents, type WatchOptions } from './watch.ts';

/** The one typed client of the API; the CLI, the agent and the web UI talk to the server only through it. */
export class Client {
  readonly http: Transport;
  readonly projects: ResourceClient<Project, ProjectCreate>;
  readonly sites: ResourceClient<Site, SiteCreate>;
  readonly nodes: ResourceClient<Node, NodeCreate>;
  readonly images: ResourceClient<Image, ImageCreate>;
  readonly machineTypes: ResourceClient<MachineType, MachineTypeCreate>;
  readonly networks: ResourceClient<Network, NetworkCreate>;
  readonly firewalls: ResourceClient<Firewall, FirewallCreate>;
  readonly vms: ResourceClient<Vm, VmCreate>;

  constructor(opts: ClientOptions) {
    this.http = new Transport(opts);
    this.projects = this.resource('project');
    this.sites = this.resource('site');
    this.nodes = this.resource('node');
    this.images = this.resource('image');
    this.machineTypes = this.resource('machine-type');
    this.networks = this.resource('network');
    this.firewalls = this.resource('firewall');
    this.vms = this.resource('vm');
  }

  /** The untyped client of any kind by name; `invalid` for an unknown kind. */
  resource<T extends AnyObject = AnyObject, C = Record<string, unknown>>(kind: string): ResourceClient<T, C> {
    return new ResourceClient<T, C>(kindDef(kind), this.http);
  }

  /** Changes to objects of any of `kinds` (all when empty) after `revision`. */
  watch(opts: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    return watchEvents(this.http, opts);
  }

  /** The audit log of mutating requests, newest first; `before` (an entry id) pages back. */
  audit(opts: { limit?: number; before?: number } = {}): Promise<{ items: AuditEntry[] }> {
    return this.http.json({ method: 'GET', path: '/v1/audit', query: { limit: opts.limit, before: opts.before } });
  }

  /** The unauthenticated liveness check: the server answers and its store is readable. */
  health(): Promise<{ status: 'ok' }> {
    return this.http.json({ method: 'GET', path: '/healthz' });
  }
}
