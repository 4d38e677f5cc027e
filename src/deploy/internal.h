/*
 * internal.h — helpers shared inside the deploy layer only.
 */
#ifndef KILN_DEPLOY_INTERNAL_H
#define KILN_DEPLOY_INTERNAL_H

#include <sys/stat.h>

/* Runs argv (PATH lookup, no shell); out: captured stdout or NULL. Returns the exit status. */
int run_tool(const char *const argv[], char **out);
/* Same, discarding output; a non-zero status becomes an error naming the command. */
int run_tool_checked(const char *const argv[]);
/* Drops "/./", "//" and trailing "/" in place. */
void path_tidy(char *p);
/* mkdir -p */
int mkdir_parents(const char *dir);

#endif
