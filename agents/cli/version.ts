// The package version, in a module of its own so `opscrew mcp` can report it without loading the CLI.
export const VERSION = '0.1.0';
