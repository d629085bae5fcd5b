/* The escalation ladder (see ladder.h for the rule). */
#include "respond/ladder.h"

#include <stdio.h>

struct pc_ladder_step pc_ladder_step(const struct pc_escalation *e, const int64_t *earlier, size_t n_earlier,
                                     int64_t now)
{
        struct pc_ladder_step st = { .kind = PC_LADDER_NONE, .repeat = 1 };
        int64_t since = e->memory > 0 && now > INT64_MIN + e->memory ? now - e->memory : now;

        for (size_t i = 0; earlier != NULL && i < n_earlier; i++)
                if (earlier[i] >= since)
                        st.repeat++;
        if (e->n_steps == 0)
                return st;
        st.index = st.repeat - 1 < e->n_steps ? st.repeat - 1 : e->n_steps - 1;
        if (st.index >= PC_ESCALATION_STEPS_MAX) /* a corrupt count: the last step that can be */
                st.index = PC_ESCALATION_STEPS_MAX - 1;
        if (e->steps[st.index] == PC_ESCALATION_SUSPEND)
                st.kind = PC_LADDER_SUSPEND;
        else if (e->steps[st.index] == PC_ESCALATION_TERMINATE)
                st.kind = PC_LADDER_TERMINATE;
        else if (e->steps[st.index] > 0) {
                st.kind = PC_LADDER_FILTER;
                st.seconds = e->steps[st.index];
        }
        return st;
}

const char *pc_ladder_ordinal(size_t n, char *buf, size_t sz)
{
        const char *sfx = "th";

        if (n % 100 < 11 || n % 100 > 13)
                sfx = n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
        snprintf(buf, sz, "%zu%s", n, sfx);
        return buf;
}
