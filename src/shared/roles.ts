/**
 * Operator roles, least to most trusted. A role may do everything the roles before it may:
 * - viewer: read incidents, runbooks, reports, audit, delivery and limits;
 * - responder: open, acknowledge, escalate, note and resolve incidents; start runbooks and
 *   run their non-destructive steps;
 * - admin: approve destructive runbook steps, rotate keys, change routes, limits, blocks and
 *   settings, manage operators.
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
