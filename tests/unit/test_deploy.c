/*
 * test_deploy.c — the deploy layer's pure parts: log rotation by size (no line split, the
 * oldest dropped, nothing lost among the kept files), reading a log's last lines, counting
 * requests in a Prometheus text, host:port collisions, deployment names, and the escaping
 * rules of systemd units (systemd.service(5): '%' specifiers, quoted ExecStart words) and
 * property lists (XML character data).
 */
#include "check.h"
#include "deploy/deploy.h"

#include <stdlib.h>
#include <unistd.h>

static char tmpdir[256];

static char *slurp(const char *path) {
    char *data = NULL;
    if (read_file(path, &data, NULL) != 0) return NULL;
    return data;
}

static void test_rotation_keeps_whole_lines(void) {
    char *path = xasprintf("%s/rot.log", tmpdir);
    log_writer *w = log_writer_open(path, 100, 2);
    CHECK(w);
    if (!w) return;
    /* 50 lines of 20 bytes, written in 7-byte pieces so writes split lines */
    char all[1001];
    for (int i = 0; i < 50; i++) {
        char line[40];
        snprintf(line, sizeof line, "line %02d ...........\n", i);
        memcpy(all + i * 20, line, 20);
    }
    all[1000] = 0;
    for (int off = 0; off < 1000; off += 7)
        log_writer_write(w, all + off, (size_t)(off + 7 > 1000 ? 1000 - off : 7));
    log_writer_close(w);
    char *p1 = xasprintf("%s.1", path), *p2 = xasprintf("%s.2", path),
         *p3 = xasprintf("%s.3", path);
    char *cur = slurp(path), *old1 = slurp(p1), *old2 = slurp(p2);
    CHECK(cur && old1 && old2);
    CHECK(!path_exists(p3));
    if (cur && old1 && old2) {
        /* each file holds whole lines and stays under the limit plus one line */
        const char *files[] = {old2, old1, cur};
        for (int f = 0; f < 3; f++) {
            size_t n = strlen(files[f]);
            CHECK_MSG(n % 20 == 0 && n <= 120, "file %d holds %zu bytes", f, n);
        }
        /* oldest to newest they are the written text's tail, in order */
        char *joined = xasprintf("%s%s%s", old2, old1, cur);
        size_t n = strlen(joined);
        CHECK(n >= 200 && n <= 1000);
        CHECK(memcmp(joined, all + 1000 - n, n) == 0);
        free(joined);
    }
    free(cur);
    free(old1);
    free(old2);
    free(p1);
    free(p2);
    free(p3);
    free(path);
}

static void test_last_lines(void) {
    char *path = xasprintf("%s/tail.log", tmpdir);
    const char *text = "one\ntwo\nthree\nfour\n";
    write_file_atomic(path, text, strlen(text));
    char *two = log_last_lines(path, 2), *all = log_last_lines(path, 10);
    CHECK_STR(two, "three\nfour\n");
    CHECK_STR(all, text);
    free(two);
    free(all);
    write_file_atomic(path, "a\nb", 3); /* no final newline */
    char *last = log_last_lines(path, 1);
    CHECK_STR(last, "b");
    free(last);
    /* a long log: the tail spans more than one 64 KiB block */
    size_t big = 200000;
    char *long_text = xmalloc(big + 1);
    for (size_t i = 0; i < big; i++) long_text[i] = (i % 100 == 99) ? '\n' : 'x';
    write_file_atomic(path, long_text, big);
    char *many = log_last_lines(path, 1500);
    CHECK(many && strlen(many) == 150000);
    free(many);
    free(long_text);
    CHECK(log_last_lines("/nonexistent/x.log", 3) == NULL);
    free(path);
}

static void test_prometheus_requests(void) {
    const char *text = "# HELP kiln_requests_total Requests answered, by HTTP status.\n"
                       "# TYPE kiln_requests_total counter\n"
                       "kiln_requests_total{status=\"200\"} 12\n"
                       "kiln_requests_total{status=\"400\",path=\"/v1/x{y}\"} 3\n"
                       "kiln_prompt_tokens_total 999\n"
                       "kiln_requests_total 5\n";
    CHECK(prometheus_requests_total(text) == 20);
    CHECK(prometheus_requests_total("kiln_generation_tokens_total 4\n") == -1);
    CHECK(prometheus_requests_total("") == -1);
    const char *hist = "kiln_time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n"
                       "kiln_time_to_first_token_seconds_sum 0.5\n"
                       "kiln_time_to_first_token_seconds_count 4\n";
    CHECK(prometheus_sum(hist, "kiln_time_to_first_token_seconds_count") == 4);
    CHECK(prometheus_sum(hist, "kiln_time_to_first_token_seconds") == -1);
}

static void test_endpoints(void) {
    CHECK(deploy_endpoints_collide("127.0.0.1", 8000, "127.0.0.1", 8000));
    CHECK(!deploy_endpoints_collide("127.0.0.1", 8000, "127.0.0.1", 8001));
    CHECK(deploy_endpoints_collide("0.0.0.0", 8000, "127.0.0.1", 8000));
    CHECK(deploy_endpoints_collide("192.168.1.5", 8000, "::", 8000));
    CHECK(deploy_endpoints_collide("localhost", 8000, "127.0.0.1", 8000));
    CHECK(!deploy_endpoints_collide("192.168.1.5", 8000, "127.0.0.1", 8000));
    CHECK_STR(deploy_client_host("0.0.0.0"), "127.0.0.1");
    CHECK_STR(deploy_client_host("::"), "::1");
}

static void test_names(void) {
    CHECK(deploy_name_valid("qwen3-4b"));
    CHECK(deploy_name_valid("Llama_3.1"));
    CHECK(!deploy_name_valid(""));
    CHECK(!deploy_name_valid("a b"));
    CHECK(!deploy_name_valid("../x"));
    CHECK(!deploy_name_valid("-x"));
    CHECK(!deploy_name_valid(".hidden"));
    CHECK(!deploy_name_valid("a/b"));
}

static void test_unit_escaping(void) {
    deploy_root root = {.dir = "/srv/my deploy", .shown = "deploy", .base = "/srv"};
    deploy_config cfg = {.name = "a",
                         .dir = "/srv/my deploy/a",
                         .display_name = "100% \"fast\"\nmodel",
                         .host = "127.0.0.1",
                         .port = 8000};
    char *unit = systemd_unit_text(&root, &cfg, "/opt/my kiln/kiln$");
    CHECK_CONTAINS(unit, "\nExecStart=\"/opt/my kiln/kiln$$\" deploy run \"a\" --root "
                         "\"/srv/my deploy\"\n");
    CHECK_CONTAINS(unit, "\nDescription=kiln: 100%% \"fast\" model (deployment a)\n");
    CHECK_CONTAINS(unit, "\nStandardOutput=append:/srv/my deploy/a/logs/service.log\n");
    CHECK_CONTAINS(unit, "\nRestart=on-failure\n");
    free(unit);
    root.dir = "/srv/R&D <x>";
    char *plist = launchd_plist_text(&root, &cfg, "/opt/kiln");
    CHECK_CONTAINS(plist, "<string>/srv/R&amp;D &lt;x&gt;</string>");
    CHECK_CONTAINS(plist, "<string>com.local.kiln-a</string>");
    free(plist);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-deploy-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_rotation_keeps_whole_lines);
    RUN(test_last_lines);
    RUN(test_prometheus_requests);
    RUN(test_endpoints);
    RUN(test_names);
    RUN(test_unit_escaping);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    free(cmd);
    return CHECK_DONE();
}
