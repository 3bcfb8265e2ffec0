/**
 * `warden keys …`: the data keys behind codes and links (peppers, seal keys) and the keys that
 * sign the tokens issued to apps. Rotation (of both) is the emergency move when a key may have
 * leaked; key material never leaves the service, so this shows ids, statuses and dates only.
 */
import { Command } from 'commander';
import { act } from './command';
import { fields, section, table, when } from './format';

interface KeyView {
  id: string;
  kek_id: string;
  status: string;
  created_at: string;
  retired_at: string | null;
}
interface TokenKeyView {
  kid: string;
  status: string;
  created_at: string;
  retired_at: string | null;
  published_until: string | null;
}
interface RotationView {
  id: number;
  from_key_id: string | null;
  to_key_id: string;
  reason: string;
  incident_id: string | null;
  revoked_challenges: number;
  rotated_by: string;
  rotated_at: string;
}
interface Rotated {
  key_id: string;
  previous_key_id: string | null;
  token_kid: string | null;
  previous_token_kid: string | null;
  rotation_id: number;
  rotated_at: string;
  revoked_challenges: number;
}

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('data keys and token signing keys: list them, rotate them in an emergency');

  keys
    .command('list')
    .description('the data keys, the token signing keys and the rotation history (never key material)')
    .action(
      act(async (ctx) => {
        const answer = await ctx.api.get<{ keys: KeyView[]; token_keys?: TokenKeyView[]; rotations: RotationView[] }>(
          '/keys',
        );
        ctx.print(answer, (a) =>
          [
            table(a.keys, [
              { header: 'KEY', value: (k) => k.id },
              { header: 'STATUS', value: (k) => k.status },
              { header: 'CREATED', value: (k) => when(k.created_at) },
              { header: 'RETIRED', value: (k) => when(k.retired_at) },
            ]),
            section(
              'Token signing keys',
              a.token_keys?.length
                ? table(a.token_keys, [
                    { header: 'KID', value: (k) => k.kid },
                    { header: 'STATUS', value: (k) => k.status },
                    { header: 'CREATED', value: (k) => when(k.created_at) },
                    { header: 'RETIRED', value: (k) => when(k.retired_at) },
                    {
                      header: 'IN JWKS UNTIL',
                      value: (k) => (k.status === 'active' ? 'active' : when(k.published_until)),
                    },
                  ])
                : undefined,
            ),
            section(
              'Rotations',
              a.rotations.length
                ? table(a.rotations, [
                    { header: 'AT', value: (r) => when(r.rotated_at) },
                    { header: 'FROM', value: (r) => r.from_key_id },
                    { header: 'TO', value: (r) => r.to_key_id },
                    { header: 'BY', value: (r) => r.rotated_by },
                    { header: 'REVOKED', value: (r) => r.revoked_challenges },
                    { header: 'INCIDENT', value: (r) => r.incident_id },
                    { header: 'REASON', value: (r) => r.reason, max: 50 },
                  ])
                : undefined,
            ),
          ].join('\n'),
        );
      }),
    );

  keys
    .command('rotate')
    .description(
      'make a new data key and a new token signing key active and retire the current ones (open codes and links stay usable unless --revoke-outstanding; tokens already issued stay verifiable until they expire)',
    )
    .requiredOption('--reason <text>', 'why (kept in the rotation history and the audit trail)')
    .option('--revoke-outstanding', 'also revoke every open code and link issued under an older key')
    .option('--incident <id>', 'the incident this is for')
    .action(
      act(async (ctx, opts: { reason: string; revokeOutstanding?: boolean; incident?: string }) => {
        const answer = await ctx.api.post<Rotated>('/keys/rotate', {
          reason: opts.reason,
          revoke_outstanding: opts.revokeOutstanding ?? false,
          incident_id: opts.incident,
        });
        ctx.print(answer, (r) =>
          fields([
            ['active key', r.key_id],
            ['retired key', r.previous_key_id],
            ['active token key', r.token_kid],
            ['retired token key', r.previous_token_kid],
            ['rotated', when(r.rotated_at)],
            ['revoked challenges', r.revoked_challenges],
          ]),
        );
      }),
    );
}
