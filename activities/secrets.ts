// Secrets by reference. The plan and workflow history carry `env:NAME` or `file:/path`; the worker
// resolves it here, at the moment of connecting, and the value lives only in activity memory.
import { readFileSync } from 'node:fs';
import { ErrorType, type CredentialsRef } from '../workflows/types';
import { verdict } from './errors';

export type SecretSource = Readonly<Record<string, string | undefined>>;

/** The password a reference points to; a missing one is a configuration error, not worth a retry. */
export function resolveSecret(ref: string, env: SecretSource): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (!value)
      throw verdict(
        ErrorType.InvalidInput,
        `credentials reference ${ref}: ${name} is not set in this worker's environment`,
      );
    return value;
  }
  if (ref.startsWith('file:/')) {
    const path = ref.slice(5);
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw verdict(
        ErrorType.InvalidInput,
        `credentials reference ${ref}: cannot be read by this worker (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  // Never echo the value: a password pasted where a reference belongs must not reach a log.
  throw verdict(
    ErrorType.InvalidInput,
    'a credentials password is not a reference; expected env:VARIABLE or file:/absolute/path',
  );
}

export function resolveCredentials(
  ref: CredentialsRef | undefined,
  env: SecretSource,
  what: string,
): { user: string; password: string } {
  if (!ref)
    throw verdict(
      ErrorType.InvalidInput,
      `${what} has no credentials in the plan; expected { user, password: env:VARIABLE }`,
    );
  return { user: ref.user, password: resolveSecret(ref.password, env) };
}
