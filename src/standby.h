/*
 * standby.h
 *		Refusing cloudconn's writes on a hot standby with a message of ours.
 */
#ifndef CLOUDCONN_STANDBY_H
#define CLOUDCONN_STANDBY_H

/* ERROR (SQLSTATE 25006) if this server is a standby; function names the caller. */
extern void StandbyRefuseWrite(const char *function);

#endif							/* CLOUDCONN_STANDBY_H */
