/* Private to the data plane: what every backend's handle starts with. */
#pragma once

#include "dataplane/dataplane.h"

struct pc_dataplane {
        const struct pc_dataplane_ops *ops;
};
