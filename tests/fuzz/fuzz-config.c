/* fuzz-config.c - libFuzzer target for cfg_parse(): any bytes, parsed as if the file had
 * mode 0600 and 0644. Checks the contract: 0 with a config, or -1 with a one-line message. */
#include "cache/config.h"
#include "net/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR); /* no tls = off warnings */
	setenv("HOME", "/home/fuzz", 1);
	unsetenv("XDG_CACHE_HOME");
	return 0;
}

static void
check(const uint8_t *data, size_t size, mode_t mode)
{
	struct cfg *cfg = NULL;
	char err[256];
	int rc = cfg_parse("fuzz", (const char *)data, size, mode, &cfg, err, sizeof(err));
	if (rc == 0) {
		if (cfg == NULL || cfg->naccounts == 0 || cfg->cache_dir == NULL)
			abort();
		for (size_t i = 0; i < cfg->naccounts; i++) {
			const struct cfg_account *a = &cfg->accounts[i];
			if (a->name == NULL || a->user == NULL || a->outbox == NULL ||
			    (a->imap.set == a->pop3.set) ||
			    ((a->password == NULL) == (a->password_cmd == NULL)))
				abort();
		}
		cfg_free(&cfg);
		if (cfg != NULL)
			abort();
	} else {
		if (rc != -1 || cfg != NULL || err[0] == '\0' || strchr(err, '\n') != NULL)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, 0600);
	check(data, size, 0644);
	return 0;
}
