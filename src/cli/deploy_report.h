/*
 * deploy_report.h — the reports of `kiln deploy list`, `status` and `watch`.
 */
#ifndef KILN_CLI_DEPLOY_REPORT_H
#define KILN_CLI_DEPLOY_REPORT_H

#include "deploy/deploy.h"

/* backend: --backend or NULL. Returns the exit status. */
int report_list(const deploy_root *root, const char *backend);
/* 0 when running (ready or loading), 3 when stopped or failed (as LSB's status). */
int report_status(const deploy_config *cfg, deploy_backend b);
/* 0 once the server is ready, 1 if it failed or timeout seconds passed. */
int report_watch(const deploy_config *cfg, deploy_backend b, double timeout);

#endif
