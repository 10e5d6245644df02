/*
 * asan_first.c
 *		Preloaded after libasan into the (uninstrumented) postgres of the fuzz
 *		run (test/fuzz/run.sh), so that AddressSanitizer initialises before
 *		glibc's gettext lock is held.  Without it the server hangs at start:
 *		the first malloc of the process is made by libgpg-error's
 *		constructor (postgres -> libsystemd -> libgcrypt -> libgpg-error)
 *		inside bindtextdomain, under glibc's _nl_state_lock; that malloc is
 *		ASan's and initialises ASan, whose start calls dlerror -> dcgettext,
 *		which takes the same lock again and leaves it broken, and
 *		postgres's own bindtextdomain then waits on it for ever.  This
 *		bindtextdomain makes a first malloc outside the lock, then calls
 *		glibc's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

char	   *bindtextdomain(const char *domain, const char *dir);

char *
bindtextdomain(const char *domain, const char *dir)
{
	static char *(*real) (const char *, const char *) = NULL;

	if (real == NULL)
	{
		void	   *volatile first = malloc(1);

		free(first);
		real = (char *(*) (const char *, const char *)) dlsym(RTLD_NEXT, "bindtextdomain");
	}
	return real(domain, dir);
}
