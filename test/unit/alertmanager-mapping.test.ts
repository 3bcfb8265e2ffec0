import { describe, expect, it } from 'vitest';
import {
  alertWorkflowId,
  incidentFromAlerts,
  severityOf,
  typeOf,
  type AlertmanagerPayload,
} from '../../src/incidents/alertmanager';

const payload = (alerts: AlertmanagerPayload['alerts'], common: Record<string, string> = {}): AlertmanagerPayload => ({
  version: '4',
  groupKey: '{}:{alertname="X"}',
  status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
  commonLabels: common,
  commonAnnotations: {},
  alerts,
});

describe('Alertmanager labels to incident', () => {
  it('uses Warden labels first, then severity words and alert names', () => {
    expect(severityOf({ severity: 'P0' })).toBe('P0');
    expect(severityOf({ severity: 'critical' })).toBe('P0');
    expect(severityOf({ severity: 'warning' })).toBe('P2');
    expect(severityOf({ severity: 'bogus' })).toBeUndefined();
    expect(typeOf({ incident_type: 'abuse', alertname: 'DatabaseDown' })).toBe('abuse');
    expect(typeOf({ incident_type: 'nonsense', alertname: 'PostgresReplicaLag' })).toBe('db_connectivity');
    expect(typeOf({ alertname: 'SendGridDeliveryErrors' })).toBe('provider_outage');
    expect(typeOf({ alertname: 'TokenLeakDetected' })).toBe('compromised_token');
    expect(typeOf({ alertname: 'DiskFull' })).toBeUndefined();
  });

  it('takes the most severe firing alert, the summary as title, the providers, the earliest start and DDoS', () => {
    const input = incidentFromAlerts(
      payload([
        {
          status: 'firing',
          labels: { alertname: 'ProviderCircuitOpen', severity: 'P2', provider: 'twilio' },
          annotations: { summary: 'Twilio circuit open' },
          startsAt: '2025-01-15T10:05:00Z',
        },
        {
          status: 'firing',
          labels: { alertname: 'ChannelDeliveryDown', severity: 'P0', provider: 'plivo' },
          startsAt: '2025-01-15T10:01:00Z',
        },
        { status: 'resolved', labels: { alertname: 'Old', severity: 'P0' } },
      ]),
      'abc',
    );
    expect(input).toMatchObject({
      type: 'provider_outage',
      severity: 'P0',
      title: 'Twilio circuit open',
      source: 'alertmanager',
      detectedAt: '2025-01-15T10:01:00Z',
      alertGroup: 'abc',
      ddos: false,
    });
    expect(input.affected?.providers).toEqual(['twilio', 'plivo']);
    expect(
      incidentFromAlerts(payload([{ status: 'firing', labels: { alertname: 'HttpDDoSSuspected' } }]), 'x'),
    ).toMatchObject({ type: 'abuse', severity: 'P2', ddos: true });
    expect(incidentFromAlerts(payload([{ status: 'firing', labels: { alertname: 'Mystery' } }]), 'x')).toMatchObject({
      type: 'other',
      severity: 'P2',
    });
  });

  it('derives one workflow id per group key', () => {
    expect(alertWorkflowId('{}:{a="1"}')).toBe(alertWorkflowId('{}:{a="1"}'));
    expect(alertWorkflowId('{}:{a="1"}')).not.toBe(alertWorkflowId('{}:{a="2"}'));
    expect(alertWorkflowId('{}:{a="1"}')).toMatch(/^alert-[0-9a-f]{32}$/);
  });
});
