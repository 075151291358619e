/* config_load.h - load dtmd_config from defaults, conf.yml and the
 * environment (docs/configuration.md). */
#ifndef DTMD_CONFIG_LOAD_H
#define DTMD_CONFIG_LOAD_H

#include "config.h"

/* Load path (may be NULL: defaults + environment only), then apply the
 * environment. Returns 0, or -1 with a malloc'd message in *err naming the
 * offending key. Unknown keys are reported through warn_cb (may be NULL). */
typedef void config_warn_fn(const char *msg);
int config_load(dtmd_config *cfg, const char *path, config_warn_fn *warn_cb, char **err);

/* Same as config_load, but reads the YAML from a string and the environment
 * from envp (NULL-terminated "K=V" array; NULL = no environment). For tests. */
int config_load_from(dtmd_config *cfg, const char *yaml_text, char *const *envp,
                     config_warn_fn *warn_cb, char **err);

#endif
