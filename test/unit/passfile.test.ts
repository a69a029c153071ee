// libpq passfile lines: a password with `:` or `\` must survive the round trip (Cloud SQL root
// passwords may hold them; a replica of such a primary could not reach it before).
import { passfileLine, passwordOfPassfileLine } from '../../activities/pg/sql';

test.each(['plain-base64url_Password', 'with:colon', 'back\\slash', 'both\\:and:\\', 'ends-with-colon:', '::'])(
  '%s survives a passfile line',
  (password) => {
    const line = passfileLine(5432, password);
    expect(line.startsWith('127.0.0.1:5432:*:postgres:')).toBe(true);
    expect(line.slice('127.0.0.1:5432:*:postgres:'.length, -1)).not.toMatch(/(^|[^\\])(\\\\)*:/);
    expect(passwordOfPassfileLine(line)).toBe(password);
  },
);
