/*
 * The slice of the Node-API ABI that hutch_sys.c uses. Node-API is a stable C
 * ABI: these declarations hold for every Node release since Node-API 8, so the
 * addon builds without Node's headers (the npm `node` package ships none) and
 * the symbols resolve against whichever node binary loads it.
 */
#ifndef HUTCH_NAPI_MIN_H
#define HUTCH_NAPI_MIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* 0 is napi_ok */
#define napi_ok 0
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef enum {
  napi_undefined,
  napi_null,
  napi_boolean,
  napi_number,
  napi_string,
  napi_symbol,
  napi_object,
  napi_function,
  napi_external,
  napi_bigint,
} napi_valuetype;
#define NAPI_AUTO_LENGTH SIZE_MAX
#define NAPI_EXPORT __attribute__((visibility("default")))

napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
napi_status napi_typeof(napi_env, napi_value, napi_valuetype *);
napi_status napi_get_value_string_utf8(napi_env, napi_value, char *, size_t, size_t *);
napi_status napi_get_value_int64(napi_env, napi_value, int64_t *);
napi_status napi_get_value_bool(napi_env, napi_value, bool *);
napi_status napi_get_buffer_info(napi_env, napi_value, void **, size_t *);
napi_status napi_create_buffer(napi_env, size_t, void **, napi_value *);
napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
napi_status napi_create_int32(napi_env, int32_t, napi_value *);
napi_status napi_create_array(napi_env, napi_value *);
napi_status napi_set_element(napi_env, napi_value, uint32_t, napi_value);
napi_status napi_get_element(napi_env, napi_value, uint32_t, napi_value *);
napi_status napi_get_array_length(napi_env, napi_value, uint32_t *);
napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
napi_status napi_create_error(napi_env, napi_value, napi_value, napi_value *);
napi_status napi_throw(napi_env, napi_value);
napi_status napi_throw_type_error(napi_env, const char *, const char *);
napi_status napi_get_undefined(napi_env, napi_value *);
napi_status napi_get_null(napi_env, napi_value *);
napi_status napi_get_boolean(napi_env, bool, napi_value *);
#endif
