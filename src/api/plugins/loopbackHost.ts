/**
 * The development stack's conveniences without authentication (the codec with
 * WARDEN_CODEC_AUTH=none, the sandbox's outbox) are for this machine only. Binding to loopback
 * keeps other machines out, but not a web page: a site whose DNS name re-resolves to 127.0.0.1
 * (DNS rebinding) makes the browser send its requests here, same-origin, with the site's name
 * in the Host header. Answering only Host headers that name a loopback address closes that.
 */
import { isIP } from 'node:net';

/** `127.0.0.1:9090`, `localhost`, `[::1]:9090`... */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host.trim());
  if (!match) return false;
  const name = (match[1] ?? match[2] ?? '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}
