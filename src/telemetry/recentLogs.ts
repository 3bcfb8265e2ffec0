/**
 * The last lines this process logged (already redacted by the logger), kept in memory so a
 * running service can scan its own logs: the compromised-token runbook's leak scan reads them.
 * A ring: the oldest line goes when the buffer is full, so memory stays bounded.
 */
export const RECENT_LOG_LINES = 20_000;

class LogRing {
  private lines: string[] = [];
  private next = 0;
  private full = false;

  constructor(private readonly capacity: number) {}

  push(line: string): void {
    if (this.full) this.lines[this.next] = line;
    else this.lines.push(line);
    this.next = (this.next + 1) % this.capacity;
    if (this.next === 0) this.full = true;
  }

  /** Oldest first. */
  snapshot(): string[] {
    return this.full ? [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)] : [...this.lines];
  }
}

export const recentLogs = new LogRing(RECENT_LOG_LINES);
