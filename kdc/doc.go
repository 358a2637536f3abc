// Package kdc is the station's Kerberos KDC (AS and TGS exchanges, PKINIT
// smart-card logon, encrypted timestamp) and a PKINIT client.
package kdc
