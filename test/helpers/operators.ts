import type { Role } from '../../src/shared/roles';
import type { Harness } from './harness';

/**
 * Authorization headers of a named operator with `role`, created (with its first token)
 * through the admin API with the bootstrap token: what a test needs to act as someone.
 */
export async function operatorHeaders(
  h: Pick<Harness, 'admin' | 'adminHeaders'>,
  name: string,
  role: Role = 'admin',
): Promise<{ authorization: string }> {
  const created = await h.admin.inject({
    method: 'POST',
    url: '/admin/api/v1/operators',
    headers: h.adminHeaders,
    payload: { name, role },
  });
  if (created.statusCode !== 201) throw new Error(`operator ${name}: ${created.statusCode} ${created.body}`);
  const issued = await h.admin.inject({
    method: 'POST',
    url: `/admin/api/v1/operators/${created.json<{ id: string }>().id}/tokens`,
    headers: h.adminHeaders,
    payload: {},
  });
  if (issued.statusCode !== 201) throw new Error(`token for ${name}: ${issued.statusCode} ${issued.body}`);
  return { authorization: `Bearer ${issued.json<{ token: string }>().token}` };
}
