/** Linux interface names crowdcloud accepts: at most 15 characters, none that need quoting in ip, nft or dnsmasq. */
export function isInterfaceName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name);
}
