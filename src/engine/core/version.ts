/** lorakit's version, stamped into run folders and adapter READMEs. */
export const VERSION = '0.1.0';
