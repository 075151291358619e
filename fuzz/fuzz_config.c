/* fuzz_config.c - libFuzzer target: dtmd's configuration loader on an
 * arbitrary YAML buffer (config_load_from, the entry point main's
 * config_load shares). A successful load is freed again; an error must come
 * with a message. Build and run with `make fuzz`. */
#include "config.h"
#include "config_load.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    dtmd_config cfg;
    char *err = NULL;
    if (config_load_from(&cfg, text, NULL, NULL, &err) == 0) {
        config_free(&cfg);
    } else if (!err) {
        abort(); /* every refusal names its reason */
    }
    free(err);
    free(text);
    return 0;
}
