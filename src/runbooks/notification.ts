/**
 * The security notification (docs/incident-response.md): the email the compromised-token
 * runbook sends each affected user. The first line is the subject.
 */
export const INCIDENT_NOTIFICATION_SUBJECT = 'Security Incident Notification';

export const INCIDENT_NOTIFICATION_TEXT = `Dear User,

We recently detected unauthorized access attempts on your account.
As a precaution, we have:
- Invalidated all active authentication tokens
- Reset your password (temporary password sent separately)
- Enabled additional security monitoring

Please:
1. Change your password immediately
2. Review recent account activity
3. Enable multi-factor authentication

If you have questions, contact security@example.com

Security Team
`;

/** The provider idempotency key of one user's notification: one email per user per incident. */
export const notificationKey = (incidentKey: string, userId: string) =>
  `${incidentKey}/security-notification/${userId}`;
