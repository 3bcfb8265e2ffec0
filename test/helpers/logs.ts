import { Writable } from 'node:stream';

/** Collects every log line a harness writes, so tests can scan them (leak checks, audit lines). */
export class LogCollector extends Writable {
  readonly lines: string[] = [];
  private echo = process.env.WARDEN_TEST_LOGS === '1';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.lines.push(line);
      if (this.echo) process.stderr.write(line + '\n');
    }
    callback();
  }

  text(): string {
    return this.lines.join('\n');
  }

  /** parsed JSON lines, optionally only those whose `msg` or `event` equals `name` */
  records(name?: string): Array<Record<string, unknown>> {
    const parsed = this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    return name ? parsed.filter((r) => r.msg === name || r.event === name) : parsed;
  }
}
