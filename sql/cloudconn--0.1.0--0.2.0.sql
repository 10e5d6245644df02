/*
 * cloudconn 0.1.0 -> 0.2.0.  Every schema change of 0.2.0, in the order of
 * sql/cloudconn.sql; test/t/007_upgrade.pl proves that a 0.1.0 database
 * upgraded with it has the catalog of a fresh 0.2.0 install.
 */

\echo Use "ALTER EXTENSION cloudconn UPDATE" to load this file. \quit

/* the install script's header comment changed only: nothing to do here yet */
