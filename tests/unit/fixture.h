/* Shared by the unit tests that need the shipped configuration: a group
 * setup that loads etc/portcullis.yaml into <cfg> and a teardown. */
#pragma once

#include <stdio.h>

#include "policy/config.h"

static struct pc_config *cfg;

static int setup(void **state)
{
        char err[1024];

        (void)state;
        if (pc_config_load(PC_SOURCE_ROOT "/etc/portcullis.yaml", &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        cfg = pc_config_free(cfg);
        return 0;
}
