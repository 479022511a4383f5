/**
 * Whether `serve` can listen on HOST:PORT, asked before anything else starts: a port already in
 * use found only after migrations ran and workers started would have changed things for a
 * process that then exits. The answer can change before the real listen, so that listen's
 * error is explained the same way.
 */
import { createServer } from 'node:net';
import { ShipError } from '../errors.ts';

export async function checkListenAddress(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => resolve());
  }).catch((error: unknown) => {
    throw listenError(error, host, port) ?? error;
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** The operator's sentence for a failed listen, or undefined when it is not about the address. */
export function listenError(error: unknown, host: string, port: number): ShipError | undefined {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const options = { cause: error, details: { host, port } };
  switch (code) {
    case 'EADDRINUSE':
      return new ShipError(
        'SHIP_ERR_PORT_IN_USE',
        `Port ${port} on ${host} is already in use (another \`shipshape serve\`?). Stop what holds it (ss -ltnp 'sport = :${port}' names it) or set PORT to a free port.`,
        options,
      );
    case 'EACCES':
      return new ShipError(
        'SHIP_ERR_CANNOT_LISTEN',
        `This user may not listen on port ${port} on ${host} (ports below 1024 need privileges). Set PORT to 1024 or above and put a reverse proxy in front, or grant the capability (setcap cap_net_bind_service).`,
        options,
      );
    case 'EADDRNOTAVAIL':
      return new ShipError(
        'SHIP_ERR_CANNOT_LISTEN',
        `HOST=${host} is not an address of this machine. Set HOST to one of its addresses (127.0.0.1 for local only, 0.0.0.0 for every interface).`,
        options,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ShipError(
        'SHIP_ERR_CANNOT_LISTEN',
        `HOST=${host} does not resolve to an address. Set HOST to an IP address of this machine (127.0.0.1 or 0.0.0.0).`,
        options,
      );
    default:
      return undefined;
  }
}
