/**
 * The challenge workflow's contract, imported by the workflow, the API and the runbooks.
 * Nothing here carries a secret: inputs hold ids and non-secret settings, the verify update
 * carries the candidate only sealed (AES-256-GCM under a data key), results hold outcomes.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export type AuthMethod = 'sms_otp' | 'magic_link';
export const AUTH_METHODS: readonly AuthMethod[] = ['sms_otp', 'magic_link'];

export const CHALLENGE_WORKFLOW_PREFIX = 'challenge-';
export const CHALLENGE_WORKFLOW_TYPE = 'challengeWorkflow';
export const challengeWorkflowId = (challengeId: string) => `${CHALLENGE_WORKFLOW_PREFIX}${challengeId}`;

/**
 * auth_challenges.status: a challenge's lifecycle, and nothing else (delivery has columns of its
 * own). Only the challenge workflow's path writes it: the issue inserts it open, and
 * src/auth/end.ts ends it. migrations/0001_base_schema.sql repeats the list in a CHECK.
 */
export const CHALLENGE_OPEN = 'open';
export const CHALLENGE_ENDS = ['verified', 'expired', 'revoked', 'locked'] as const;
/** How a challenge ended. */
export type ChallengeEnd = (typeof CHALLENGE_ENDS)[number];
export type ChallengeStatus = typeof CHALLENGE_OPEN | ChallengeEnd;
export const CHALLENGE_STATUSES: readonly ChallengeStatus[] = [CHALLENGE_OPEN, ...CHALLENGE_ENDS];

export function isChallengeEnd(status: string | null | undefined): status is ChallengeEnd {
  return (CHALLENGE_ENDS as readonly (string | null | undefined)[]).includes(status);
}

/** Stable failure types (ApplicationFailure.type) of the challenge workflow and its activities. */
export const ChallengeErrorType = {
  /** the challenge has no row: no retry can make one appear */
  notFound: 'ChallengeNotFoundError',
  /** the issue failed: the waiting initiate answers 503 */
  notIssued: 'ChallengeNotIssued',
  /** no active data key can be unwrapped (the keyring lacks its key-encryption key) */
  dataKeyUnavailable: 'DataKeyUnavailableError',
} as const;

/** identity.auth.token_invalidated reasons (`locked`: the attempt budget ran out). */
export type RevokeReason = 'manual_revoke' | 'security_incident' | 'key_rotation';
export const REVOKE_REASONS: readonly RevokeReason[] = ['manual_revoke', 'security_incident', 'key_rotation'];
export type InvalidationReason = 'used' | 'expired' | 'locked' | RevokeReason;

/** Snapshot of the runtime settings at initiate: a later change never alters a live challenge. */
export interface ChallengeLimits {
  maxAttempts: number;
  resendCooldownSeconds: number;
  maxSends: number;
}

/**
 * Whom a challenge belongs to and who may turn its verification into an authorization code
 * (src/auth/bindings.ts): an S256 `codeChallenge` from the app, the SHA-256 (hex) of Warden's
 * device cookie, or both. Hashes and the app's own values only, never a secret.
 */
export interface ChallengeBinding {
  clientId: string;
  origin: 'browser' | 'server';
  codeChallenge?: string;
  deviceSha256?: string;
  redirectUri?: string;
  state?: string;
  nonce?: string;
}

export interface ChallengeInput {
  challengeId: string;
  /** as the client typed it; may name no user (the challenge is then a decoy nobody receives) */
  userId: string;
  method: AuthMethod;
  ipMasked: string;
  /** ISO timestamp, fixed by the API from the TTL setting */
  expiresAt: string;
  limits: ChallengeLimits;
  /** the app and the binding; absent only for challenges started before apps existed */
  binding?: ChallengeBinding;
}

export interface ChallengeResult {
  status: ChallengeEnd;
  reason: InvalidationReason;
  attempts: number;
  sends: number;
}

/** The candidate code or token, sealed by the API: `blob` is base64 of iv || ciphertext || tag. */
export interface SealedCandidate {
  keyId: string;
  blob: string;
}

export interface VerifyInput {
  candidate: SealedCandidate;
}

/**
 * What one verify attempt does to a challenge: the decision, made only here. The attempt
 * activity calls it and carries out the end or the count; the workflow settles on its answer.
 * `attempts` counts this attempt.
 */
export type AttemptDecision =
  | { outcome: 'verified'; end: { status: 'verified'; reason: 'used' } }
  | { outcome: 'invalid'; remainingAttempts: number }
  | { outcome: 'locked'; end: { status: 'locked'; reason: 'locked' } }
  /** a revocation cut-off covers the challenge: the attempt ended it, whatever the candidate */
  | { outcome: 'revoked'; end: { status: 'revoked'; reason: RevokeReason } };

export function decideAttempt(match: boolean, attempts: number, maxAttempts: number): AttemptDecision {
  if (match) return { outcome: 'verified', end: { status: 'verified', reason: 'used' } };
  const remainingAttempts = Math.max(0, maxAttempts - attempts);
  if (remainingAttempts > 0) return { outcome: 'invalid', remainingAttempts };
  return { outcome: 'locked', end: { status: 'locked', reason: 'locked' } };
}

export type VerifyResult =
  | { outcome: 'verified'; userId: string }
  | { outcome: 'invalid'; remainingAttempts: number }
  /** lockedByThisAttempt: this wrong guess used the last attempt */
  | { outcome: 'locked'; lockedByThisAttempt?: boolean }
  | { outcome: 'expired' }
  | { outcome: 'already_used' }
  | { outcome: 'revoked' };

export type ResendInput = Record<string, never>;

export type ResendResult =
  | { outcome: 'queued'; sends: number; sendsRemaining: number; expiresAt: string }
  | { outcome: 'cooldown'; retryAfterSeconds: number }
  | { outcome: 'limit_reached'; sends: number }
  | { outcome: 'expired' }
  | { outcome: 'already_used' }
  | { outcome: 'revoked' }
  | { outcome: 'locked' };

export interface IssuedResult {
  expiresAt: string;
}

export interface RevokeInput {
  reason: RevokeReason;
  incidentId?: string;
}

export interface ChallengeState {
  issued: boolean;
  status: ChallengeStatus;
  attempts: number;
  maxAttempts: number;
  sends: number;
  expiresAt: string;
}

/** The API waits on this (update-with-start) so the row exists when initiate answers. */
export const awaitIssueUpdate = defineUpdate<IssuedResult, [Record<string, never>]>('awaitIssue');
export const verifyUpdate = defineUpdate<VerifyResult, [VerifyInput]>('verify');
export const resendUpdate = defineUpdate<ResendResult, [ResendInput]>('resend');
export const revokeSignal = defineSignal<[RevokeInput]>('revoke');
export const challengeStateQuery = defineQuery<ChallengeState>('challengeState');

/** The activity-level idempotency key of the n-th send (1-based) of a challenge. */
export const sendIdempotencyKey = (challengeId: string, sendNumber: number) =>
  `${challengeWorkflowId(challengeId)}/send-${sendNumber}`;
