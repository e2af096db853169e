package storechoice

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-messenger/parley/relay/store"
)

// BenchmarkExpiry weighs boltstore's expiry index against a scan, on raw
// bbolt without fsync (the difference is work, not syncs):
//
//   - append: one block appended in its own transaction, with or without
//     the extra index entry;
//   - expire: one Expire pass over a store holding 10,000 waiting blocks
//     of which none is due, the common case for a periodic expiry; the
//     index answers by reading its first key, a scan reads every block.
func BenchmarkExpiry(b *testing.B) {
	const waiting = 10000
	for _, indexed := range []bool{true, false} {
		name := "scan"
		if indexed {
			name = "index"
		}
		open := func(b *testing.B) *bolt.DB {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "x.db"), 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			check(b, err)
			check(b, db.Update(func(tx *bolt.Tx) error {
				for _, n := range [][]byte{bbBlocks, bbExpiry} {
					if _, err := tx.CreateBucket(n); err != nil {
						return err
					}
				}
				return nil
			}))
			return db
		}
		var id store.ID
		data := paddedBlock()
		now := time.Now().UnixNano()
		appendOne := func(db *bolt.DB, seq uint64) error {
			return db.Update(func(tx *bolt.Tx) error {
				if err := tx.Bucket(bbBlocks).Put(blockKey('b', id, seq), blockValue(now, data)); err != nil {
					return err
				}
				if !indexed {
					return nil
				}
				return tx.Bucket(bbExpiry).Put(expiryKey('e', now, id, seq), nil)
			})
		}
		b.Run("append/"+name, func(b *testing.B) {
			db := open(b)
			defer db.Close()
			seq := uint64(0)
			for b.Loop() {
				seq++
				check(b, appendOne(db, seq))
			}
		})
		b.Run("expire/"+name, func(b *testing.B) {
			db := open(b)
			defer db.Close()
			for seq := range uint64(waiting) {
				check(b, appendOne(db, seq+1))
			}
			cutoff := expiryKey('e', now-int64(time.Hour), store.ID{}, 0)[:9]
			for b.Loop() {
				due := 0
				check(b, db.View(func(tx *bolt.Tx) error {
					if indexed {
						k, _ := tx.Bucket(bbExpiry).Cursor().First()
						if k != nil && bytes.Compare(k[:9], cutoff) < 0 {
							due++
						}
						return nil
					}
					return tx.Bucket(bbBlocks).ForEach(func(_, v []byte) error {
						if int64(binary.BigEndian.Uint64(v)) < now-int64(time.Hour) {
							due++
						}
						return nil
					})
				}))
				if due != 0 {
					b.Fatalf("%d blocks due", due)
				}
			}
		})
	}
}
