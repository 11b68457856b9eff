/**
 * Imported first: the panel's CSP allows no eval, so zod must not probe for it. Its JIT (new Function, for object
 * parsers) is checked when a schema is made, which happens as src/protocol loads: this runs before that.
 */
import { z } from 'zod';

z.config({ jitless: true });
