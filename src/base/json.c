/*
 * json.c — jansson helpers: loading a file with an error that names the place, and typed
 * getters that tell "absent" from "present with the wrong type".
 */
#include "base.h"

json_t *json_load_path(const char *path) {
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (err.line <= 0)
            kiln_error("%s: %s", path, err.text);
        else
            kiln_error("%s:%d:%d: %s", path, err.line, err.column, err.text);
    }
    return root;
}

int json_get_int(const json_t *obj, const char *key, long long *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    /* config.json files written by Python sometimes hold 4096.0 */
    if (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v)) {
        *out = (long long)json_real_value(v);
        return 0;
    }
    kiln_error("\"%s\" must be an integer", key);
    return -1;
}

int json_get_double(const json_t *obj, const char *key, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_number(v)) {
        kiln_error("\"%s\" must be a number", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_boolean(v)) {
        kiln_error("\"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int json_get_string(const json_t *obj, const char *key, const char **out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_string(v)) {
        kiln_error("\"%s\" must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}
