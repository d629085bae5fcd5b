/* The JSON form of each object (ops_json.h). */
#include "ops/ops_json.h"

#include <string.h>

json_t *pc_json_time(int64_t t)
{
        char buf[32];

        if (t == 0)
                return json_null();
        pc_format_time(t, buf, sizeof(buf));
        return json_string(buf);
}

json_t *pc_json_text(const char *s)
{
        return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

json_t *pc_json_ticket(const struct pc_ticket *t)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id",
                         (json_int_t)t->id, "vps", t->vps_id, "service", t->service, "ports", pc_json_text(t->ports),
                         "duration", t->duration != 0 ? json_integer(t->duration) : json_null(), "state",
                         pc_ticket_state_name(t->state), "owner", t->owner, "opened_by", t->opened_by, "opened",
                         pc_json_time(t->opened), "text", t->text, "evidence", pc_json_text(t->evidence), "updated",
                         pc_json_time(t->updated), "updated_by", t->updated_by, "note", pc_json_text(t->note),
                         "exception", t->exception_id != 0 ? json_integer(t->exception_id) : json_null(), "until",
                         pc_json_time(t->until));
}

json_t *pc_json_ticket_event(const struct pc_ticket_event *e)
{
        return json_pack("{s:o, s:s, s:s, s:o}", "at", pc_json_time(e->at), "by", e->by, "kind", e->kind, "note",
                         pc_json_text(e->text));
}

/* Evidence JSON text <e> (may be NULL) as JSON: the object, or the text
 * as a string if a writer stored something that is not JSON. */
static json_t *evidence_json(const char *e)
{
        json_t *j;

        if (e == NULL)
                return json_null();
        j = json_loads(e, JSON_DECODE_ANY, NULL);
        return j != NULL ? j : json_string(e);
}

json_t *pc_json_incident(const struct pc_incident *i)
{
        return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:o}", "id", (json_int_t)i->id, "vps",
                         i->vps_id, "kind", i->kind, "state", i->open ? "open" : "closed", "first_seen",
                         pc_json_time(i->first_seen), "last_seen", pc_json_time(i->last_seen), "count",
                         (json_int_t)i->count, "actions", (json_int_t)i->actions, "evidence",
                         evidence_json(i->evidence));
}

json_t *pc_json_action(const struct pc_store_action *a, int64_t now)
{
        return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:o, s:s, s:s, s:s?, s:o, s:o, s:o, s:s?}", "id",
                         (json_int_t)a->id, "vps", a->vps_id, "kind", a->kind, "terminated", a->terminated, "state",
                         pc_store_action_state(a, now), "direction", a->direction, "incident",
                         a->incident_id != 0 ? json_integer(a->incident_id) : json_null(), "scope", a->scope,
                         "by", a->by, "reason", a->reason[0] != '\0' ? a->reason : NULL, "created",
                         pc_json_time(a->created), "until", pc_json_time(a->until), "lifted_at",
                         pc_json_time(a->lifted_at), "lifted_by", a->lifted_by[0] != '\0' ? a->lifted_by : NULL);
}

int64_t pc_notification_next_attempt(const struct pc_notification *n)
{
        return strcmp(n->state, "pending") == 0 ? n->next_attempt : 0;
}

json_t *pc_json_notification(const struct pc_notification *n)
{
        return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "id",
                         (json_int_t)n->id, "created", pc_json_time(n->created), "vps", n->vps_id, "kind", n->kind,
                         "channel", n->channel[0] != '\0' ? n->channel : "email", "recipient", n->recipient,
                         "language", n->language, "state", n->state, "attempts", (json_int_t)n->attempts,
                         "next_attempt", pc_json_time(pc_notification_next_attempt(n)), "sent_at", pc_json_time(n->sent_at),
                         "last_error", pc_json_text(n->last_error), "message_id", pc_json_text(n->message_id));
}

json_t *pc_json_token(const struct pc_api_token *t)
{
        return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)t->id, "name", t->name,
                         "role", t->role, "customer", pc_json_text(t->customer), "created", pc_json_time(t->created),
                         "created_by", t->created_by, "expires", pc_json_time(t->expires), "revoked",
                         pc_json_time(t->revoked), "last_used", pc_json_time(t->last_used));
}
