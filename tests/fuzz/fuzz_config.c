/* libFuzzer harness for the configuration loader: any bytes are a main
 * config file; loading must never crash, leak or print, and a loaded
 * config must print. */
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

                if (null != NULL) {
                        pc_config_print(cfg, null);
                        fclose(null);
                }
        }
        pc_config_free(cfg);
        return 0;
}
