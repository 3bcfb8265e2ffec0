/**
 * Operator roles, least to most trusted. A role may do everything the roles before it may:
 * - viewer: read incidents, runbooks, reports, audit, delivery and limits;
 * - responder: open, acknowledge, escalate, note and resolve incidents; start runbooks and
 *   run their non-destructive steps;
 * - admin: approve destructive runbook steps, rotate keys, change routes, limits, blocks and
 *   settings, manage operators, export and erase a user's data (docs/privacy.md).
 */
export const ROLES = ['viewer', 'responder', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** true when `role` may do what `needed` may */
export function roleAtLeast(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/**
 * On whose authority a runbook run acts, as its approval policy reads it: the role of the
 * operator who asked for the run, or `automation` when no person did (an Alertmanager alert,
 * which is how Warden's own alert rules open incidents). Never a credential. Unknown counts as
 * no more than a responder.
 */
export type Authority = Role | 'automation';

export function isAuthority(value: unknown): value is Authority {
  return value === 'automation' || isRole(value);
}

/**
 * P0 containment (revoking, blocking, rotating, switching) runs without waiting only when an
 * admin or Warden's own alerting asked for the run: only an admin decides destructive steps,
 * and an alert at 3 a.m. must not wait for one to wake up.
 */
export function containsWithoutApproval(authority: Authority | undefined): boolean {
  return authority === 'admin' || authority === 'automation';
}
