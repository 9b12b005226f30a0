// Jansson for Swift: its reference counting is done by inline functions and
// macros Swift cannot see, so they are re-exposed here as plain functions.
#ifndef CJANSSON_SHIM_H
#define CJANSSON_SHIM_H
#include <jansson.h>
#include <stdio.h>

static inline json_t *cjansson_incref(json_t *json) { return json_incref(json); }
static inline void cjansson_decref(json_t *json) { json_decref(json); }
static inline int cjansson_typeof(const json_t *json) { return (int)json_typeof(json); }
/// A real as jansson writes it at JSON_REAL_PRECISION(17), before its own
/// touch-ups (JSON.swift's direct writer makes them): printf's `%.17g`.
static inline int cjansson_format_real(char *buffer, size_t size, double value) {
    return snprintf(buffer, size, "%.17g", value);
}
#endif
