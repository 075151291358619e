/* modes.h - the per-mode pass logic (one module per transaction mode). */
#ifndef DTMD_MODES_H
#define DTMD_MODES_H

#include "pass.h"

extern const pass_ops saga_ops;     /* saga.c */
extern const pass_ops msg_ops;      /* msg.c */
extern const pass_ops tcc_ops;      /* tcc.c: try/confirm/cancel */
extern const pass_ops xa_ops;       /* tcc.c: commit/rollback walk */
extern const pass_ops workflow_ops; /* workflow.c */

#endif
