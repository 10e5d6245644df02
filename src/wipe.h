/*
 * wipe.h
 *		Wiping secrets from memory (wipe.c): the one place that zeroes
 *		strings and buffers that may hold a token, a key or a credential
 *		before their memory goes back to an allocator.
 */
#ifndef CLOUDCONN_WIPE_H
#define CLOUDCONN_WIPE_H

/* Zero len bytes at p (NULL is fine). */
extern void WipeBuffer(void *p, size_t len);

/* Zero a NUL-terminated string (NULL is fine). */
extern void WipeString(char *s);

/*
 * Zero a palloc'd string and pfree it (NULL is fine).  Never one of
 * WipeOnReset or WipeCopy: their reset callback would write to it freed
 * (WipeString it instead; its context frees it).
 */
extern void WipeAndFree(char *s);

/*
 * s, a palloc'd string, is zeroed when the memory context holding it is
 * reset or deleted, ERROR paths included.  Returns s.
 */
extern char *WipeOnReset(char *s);

/* A copy of s in the current memory context, wiped as WipeOnReset says. */
extern char *WipeCopy(const char *s);

#endif							/* CLOUDCONN_WIPE_H */
