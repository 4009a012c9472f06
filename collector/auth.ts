import { timingSafeEqual } from "node:crypto";

/**
 * Checks an Authorization value against the configured bearer token in constant time. No token configured: every
 * request passes (the receivers listen on loopback by default).
 */
export function bearerCheck(token: string | undefined): (authorization: string | undefined) => boolean {
  if (!token) return () => true;
  const expected = Buffer.from(`Bearer ${token}`);
  return (authorization) => {
    if (!authorization) return false;
    const given = Buffer.from(authorization);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}
