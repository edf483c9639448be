/**
 * The names fedgit accepts, spelled once: participant names (plan edges, the aggregator, key
 * names, signed statements) and environment variable names (tokens, secrets, an engine's env).
 */
import { z } from 'zod';

/** 1–63 lowercase letters, digits or dashes, starting with a letter or digit: safe in refs, URLs and file names. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const NAME_RULE = 'must be 1–63 lowercase letters, digits or dashes, starting with a letter or digit';
export const Name = z.string().regex(NAME_PATTERN, NAME_RULE);

export const ENV_VAR_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const EnvVarName = z.string().regex(ENV_VAR_PATTERN, 'must be an environment variable name');
