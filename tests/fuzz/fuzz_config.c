/* libFuzzer harness for the configuration loader: any bytes are a main
 * config file; loading must never crash, leak or print, and a loaded
 * config must print, as YAML and as JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pc_config *cfg = NULL;
        char err[512];

        if (pc_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, err,
                                  sizeof(err)) == 0) {
                FILE *null = fopen("/dev/null", "w");

                json_t *j = pc_config_json(cfg);
                char *text = j != NULL ? json_dumps(j, JSON_PRESERVE_ORDER) : NULL;

                if (null != NULL) {
                        pc_config_print(cfg, null);
                        fclose(null);
                }
                /* Every string of a config is valid UTF-8 (jansson refuses
                 * others), so the JSON must always come out. */
                if (text == NULL)
                        abort();
                free(text);
                json_decref(j);
        }
        pc_config_free(cfg);
        return 0;
}
