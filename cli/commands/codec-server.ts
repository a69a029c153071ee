// `lifeboat codec-server`: decrypts payloads for the Temporal UI and CLI (services/codec-server.ts).
import { CodecConfigError } from '../../worker/codec-settings';
import { expectArgs } from '../args';
import type { CommandContext } from '../context';

export async function codecServer({ env, args }: CommandContext): Promise<number> {
  expectArgs(args, 1, 'lifeboat codec-server [--port N] [--host addr] [--origin URL]...');
  if (!env.codec.keys) {
    throw new CodecConfigError(
      `no codec keys: set LIFEBOAT_CODEC_KEYS_FILE (or LIFEBOAT_CODEC_KEY), or run \`lifeboat dev up\`, which makes ${env.codec.defaultKeyFile}`,
    );
  }
  const ui = env.uiUrl ? [new URL(env.uiUrl).origin] : ['http://localhost:8233', 'http://127.0.0.1:8233'];
  const { runCodecServer } = await import('../../services/codec-server');
  const logger = (await import('../../worker/logger')).createLogger(env.logLevel);
  await runCodecServer({
    keys: env.codec.keys,
    logger,
    port: args.port ?? env.codec.port,
    host: args.host,
    origins: args.origins ?? ui,
    token: env.codec.serverToken,
  });
  return 0;
}
