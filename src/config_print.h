/* config_print.h - print the effective configuration (dtmd --check-config). */
#ifndef DTMD_CONFIG_PRINT_H
#define DTMD_CONFIG_PRINT_H

#include "config.h"

#include <stdio.h>

/* Print every key's effective value as YAML ("Store.Host: \"127.0.0.1\"  # env
 * STORE_HOST"), passwords and tokens masked. */
void config_print(const dtmd_config *cfg, FILE *out);

#endif
