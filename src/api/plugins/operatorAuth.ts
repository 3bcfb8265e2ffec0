/**
 * The admin API's authentication and authorization. A bearer token is either an operator's
 * (src/auth/operators.ts: named, with a role) or the deployment's bootstrap admin token
 * (WARDEN_ADMIN_TOKEN: an admin named `admin-api`, for creating the first operators and for
 * automation that predates them). Each route names the least role it needs in its config;
 * without one, reading needs a viewer and anything else an admin, so a route nobody thought
 * about is closed rather than open. A refusal is audited with who asked for what.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuditEventType, recordAudit } from '../../auth/audit';
import { authenticateToken } from '../../auth/operators';
import { roleAtLeast, type Role } from '../../shared/roles';
import { ApiError } from '../errors';
import { tokensMatch } from './bearerAuth';
import type { Operator } from './operator';

export const BOOTSTRAP_OPERATOR: Operator = { id: null, name: 'admin-api', role: 'admin' };

const BEARER = /^Bearer\s+(\S+)$/i;

export function neededRole(request: FastifyRequest): Role {
  const configured = request.routeOptions.config?.role;
  if (configured) return configured;
  return request.method === 'GET' || request.method === 'HEAD' ? 'viewer' : 'admin';
}

/** The caller's operator; the hooks below guarantee one on every admin route. */
export function operatorOf(request: FastifyRequest): Operator {
  if (!request.operator) throw new Error('admin route reached without an authenticated operator');
  return request.operator;
}

/** onRequest: who is calling (401 when nobody valid). */
export async function authenticateOperator(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { db, config } = request.server.warden;
  const presented = BEARER.exec(request.headers.authorization ?? '')?.[1];
  let operator: Operator | undefined;
  if (presented) {
    if (config.adminToken && tokensMatch(presented, config.adminToken)) operator = BOOTSTRAP_OPERATOR;
    else {
      const found = await authenticateToken(db, presented);
      if (found) operator = { id: found.id, name: found.name, role: found.role };
    }
  }
  if (!operator) {
    reply.header('WWW-Authenticate', 'Bearer realm="warden-admin"');
    throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
  }
  request.operator = operator;
}

/** preValidation (before the body is judged): may this operator do what the route does (403, audited, when not). */
export async function authorizeOperator(request: FastifyRequest): Promise<void> {
  const operator = operatorOf(request);
  const needed = neededRole(request);
  if (roleAtLeast(operator.role, needed)) return;
  const { db, logger } = request.server.warden;
  await recordAudit(db.writer, logger, {
    type: AuditEventType.accessRefused,
    outcome: 'refused',
    reason: 'role',
    details: {
      via: 'admin-api',
      actor: operator.name,
      role: operator.role,
      needed,
      method: request.method,
      route: request.routeOptions.url ?? null,
    },
  }).catch((err: unknown) => request.log.warn({ err: { name: (err as Error).name } }, 'refusal not audited'));
  throw new ApiError(403, 'forbidden', `this needs the ${needed} role; ${operator.name} is a ${operator.role}`, {
    needed_role: needed,
  });
}
