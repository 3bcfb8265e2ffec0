import type { Role } from '../../shared/roles';

/** Who is calling, as the admin API's authentication established it. */
export interface Operator {
  /** the operators row's id; null for the bootstrap admin token */
  id: string | null;
  /** what the audit trail and the incident timeline name */
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    operator?: Operator;
  }
  interface FastifyContextConfig {
    /** the least role a route needs; unset: viewer for GET and HEAD, admin for anything else */
    role?: Role;
  }
}
