/* trans_request.h - a transaction from a create/submit/prepare/abort request:
 * the body parsed and validated, and the branches a saga or msg has at
 * creation (msg topics expanded). Everything here answers a client: errors
 * are client-facing messages for a 400. */
#ifndef DTMD_TRANS_REQUEST_H
#define DTMD_TRANS_REQUEST_H

#include "config.h"
#include "json.h"
#include "trans.h"

#include <stddef.h>

/* The gid as dtm reads it: '\n', '\r' and ';' removed. NULL + err (400)
 * when nothing is left or it exceeds Limits.MaxGidLength; caller frees. */
char *trans_clean_gid(const char *raw, const dtmd_config *cfg, char *err, size_t errlen);

/* Parse and validate a create/submit/abort/prepare body. On error returns -1
 * with a client-facing message in err (the caller answers 400). The result
 * has status GS_PREPARED and no branches; type-specific generation of
 * branches is trans_make_branches. */
int trans_from_request(yajl_val root, const dtmd_config *cfg, trans **out, char *err,
                       size_t errlen);

/* json_parse + trans_from_request on a request body, keeping payload bytes
 * exactly (also strings holding NUL bytes). */
int trans_from_body(const char *body, size_t len, const dtmd_config *cfg, trans **out, char *err,
                    size_t errlen);

/* Subscriber URLs of msg topics, read from the store before a msg's
 * branches are made: urls[i] belongs to names[i]. */
typedef struct topic_set {
    size_t n;
    char **names;
    json_strs *urls;
} topic_set;

/* Names of the topics a msg's steps deliver to ("topic://<name>" actions),
 * without repeats. Returns the count; the caller frees each name and *names. */
size_t trans_step_topics(const trans *t, char ***names);
const json_strs *topic_set_find(const topic_set *ts, const char *name);
void topic_set_free(topic_set *ts);

/* Generate the branches a saga/msg has at creation (docs/protocol.md#branches),
 * expanding msg topic steps with topics (may be NULL when no step names a
 * topic). -1 + err on invalid steps or an unknown topic (400). cfg NULL:
 * no limits (a stored saga's branches rebuilt, trans_hash.h). */
int trans_make_branches(trans *t, const dtmd_config *cfg, const topic_set *topics, char *err,
                        size_t errlen);

/* Limits.MaxBranches, the most branches a transaction may have (as query
 * lists them: a saga step is two, a msg step or topic subscriber one, a TCC
 * or XA registration two, a workflow one): may one with have branches get
 * adding more? -1 + err (400) if not. registerBranch applies the same limit
 * inside lua/register_branch.lua, where the stored count is. */
int trans_branch_limit(const dtmd_config *cfg, long have, size_t adding, char *err, size_t errlen);

#endif
