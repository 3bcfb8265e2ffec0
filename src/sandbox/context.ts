import type { CallbackSender } from './callbacks';
import type { SandboxState } from './state';

/** What every provider route plugin is handed: the sandbox's memory and its callback sender. */
export interface SandboxContext {
  state: SandboxState;
  callbacks: CallbackSender;
}
