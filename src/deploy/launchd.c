/*
 * launchd.c — the macOS backend: a LaunchAgent ~/Library/LaunchAgents/com.local.kiln-NAME.plist
 * that runs `kiln deploy run NAME` (KeepAlive: restarted unless it exited cleanly, output
 * paths in the deployment's logs/), loaded and unloaded with launchctl.
 */
#include "deploy/deploy.h"
#include "deploy/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *launchd_label(const char *name) {
    return xasprintf("com.local.kiln-%s", name);
}

char *launchd_plist_path(const char *name) {
    const char *home = getenv("HOME");
    return xasprintf("%s/Library/LaunchAgents/com.local.kiln-%s.plist", home ? home : "", name);
}

/* XML character data: the five specials escaped, control characters dropped. */
static char *xml_escape(const char *s) {
    size_t n = strlen(s);
    char *out = xmalloc(n * 6 + 1), *w = out;
    for (; *s; s++) {
        switch (*s) {
        case '&':
            w += sprintf(w, "&amp;");
            break;
        case '<':
            w += sprintf(w, "&lt;");
            break;
        case '>':
            w += sprintf(w, "&gt;");
            break;
        case '"':
            w += sprintf(w, "&quot;");
            break;
        case '\'':
            w += sprintf(w, "&apos;");
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') *w++ = *s;
        }
    }
    *w = 0;
    return out;
}

char *launchd_plist_text(const deploy_root *root, const deploy_config *cfg, const char *exe) {
    char *label = launchd_label(cfg->name);
    char *x_label = xml_escape(label), *x_exe = xml_escape(exe), *x_name = xml_escape(cfg->name),
         *x_root = xml_escape(root->dir), *x_base = xml_escape(root->base),
         *x_dir = xml_escape(cfg->dir);
    char *text =
        xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
                  "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
                  "<!-- Written by `kiln deploy install`; `kiln deploy uninstall` removes it. -->\n"
                  "<plist version=\"1.0\">\n"
                  "<dict>\n"
                  "    <key>Label</key>\n"
                  "    <string>%s</string>\n"
                  "    <key>ProgramArguments</key>\n"
                  "    <array>\n"
                  "        <string>%s</string>\n"
                  "        <string>deploy</string>\n"
                  "        <string>run</string>\n"
                  "        <string>%s</string>\n"
                  "        <string>--root</string>\n"
                  "        <string>%s</string>\n"
                  "    </array>\n"
                  "    <key>WorkingDirectory</key>\n"
                  "    <string>%s</string>\n"
                  "    <key>RunAtLoad</key>\n"
                  "    <true/>\n"
                  "    <key>KeepAlive</key>\n"
                  "    <dict>\n"
                  "        <key>SuccessfulExit</key>\n"
                  "        <false/>\n"
                  "    </dict>\n"
                  "    <key>ThrottleInterval</key>\n"
                  "    <integer>2</integer>\n"
                  "    <key>ExitTimeOut</key>\n"
                  "    <integer>30</integer>\n"
                  "    <key>StandardOutPath</key>\n"
                  "    <string>%s/logs/service.log</string>\n"
                  "    <key>StandardErrorPath</key>\n"
                  "    <string>%s/logs/service.log</string>\n"
                  "</dict>\n"
                  "</plist>\n",
                  x_label, x_exe, x_name, x_root, x_base, x_dir, x_dir);
    free(label);
    free(x_label);
    free(x_exe);
    free(x_name);
    free(x_root);
    free(x_base);
    free(x_dir);
    return text;
}

static int launchctl(const char *verb, const char *flag, const char *plist) {
    const char *argv[] = {"launchctl", verb, flag ? flag : plist, flag ? plist : NULL, NULL};
    return run_tool_checked(argv);
}

int launchd_install(const char *plist_path, const char *text, bool start) {
    char *dir = path_dirname(plist_path);
    int rc = mkdir_parents(dir);
    free(dir);
    if (rc == 0) rc = write_file_atomic(plist_path, text, strlen(text));
    if (rc == 0 && start) rc = launchctl("load", "-w", plist_path);
    return rc;
}

int launchd_uninstall(const char *plist_path) {
    if (!path_exists(plist_path)) return 0;
    const char *argv[] = {"launchctl", "unload", plist_path, NULL};
    run_tool(argv, NULL); /* not loaded is fine */
    if (unlink(plist_path) != 0) {
        kiln_error("%s: %s", plist_path, strerror(errno));
        return -1;
    }
    return 0;
}

int launchd_start(const char *plist_path) {
    return launchctl("load", "-w", plist_path);
}

int launchd_stop(const char *plist_path) {
    return launchctl("unload", NULL, plist_path);
}

void launchd_query(const char *name, deploy_service_state *st) {
    char *label = launchd_label(name), *path = launchd_plist_path(name), *out = NULL;
    st->installed = path_exists(path);
    const char *argv[] = {"launchctl", "list", label, NULL};
    int rc = run_tool(argv, &out);
    st->running = rc == 0;
    snprintf(st->detail, sizeof st->detail, "%s", rc == 0 ? "loaded" : "not loaded");
    free(out);
    free(label);
    free(path);
}
