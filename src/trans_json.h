/* trans_json.h - the JSON of a transaction and its branches, as dtm's
 * query and all answers carry them (times in RFC 3339). */
#ifndef DTMD_TRANS_JSON_H
#define DTMD_TRANS_JSON_H

#include "trans.h"
#include "util.h"

/* JSON of the global record and of branch i (docs/protocol.md#stored-records). */
void trans_to_json(const trans *t, sbuf *out);
void branch_to_json(const trans *t, int i, sbuf *out);

/* {"transaction":{...},"<list>":[branches]}: query's answer ("branches")
 * and prepareWorkflow's ("progresses"). */
void trans_answer_json(const trans *t, const char *list, sbuf *out);

#endif
