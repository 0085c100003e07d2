/**
 * The key device secrets are sealed under in tests (docs/deployment.md, "The device secret key"):
 * a constant, so every store a test opens on one database shares it as collectors sharing
 * PostgreSQL share their key file. Any other 32 bytes is "another key".
 */
export const TEST_SECRET_KEY = Buffer.alloc(32, 0x5a);
