package directory

// Batch makes several changes to the store in one transaction: one
// commit (one fsync) for all of them, which is what makes creating many
// entries at once fast. It is valid only inside the function given to
// Store.Batch.
type Batch struct{ w *writer }

// Batch runs fn with a Batch and commits what it did when fn returns nil;
// when fn (or any change) fails, nothing of the batch is kept.
func (s *Store) Batch(fn func(b *Batch) error) error {
	return s.update("", true, func(w *writer) error { return fn(&Batch{w: w}) })
}

// AddUser is Store.AddUser inside the batch.
func (b *Batch) AddUser(u User) (*User, error) { return b.w.createUser(u, nil) }

// AddGroup is Store.AddGroup inside the batch, with the group's first
// members (login names or DNs): a large group is much faster made this
// way than with AddMember for each member.
func (b *Batch) AddGroup(name, description string, members ...string) (*Group, error) {
	return b.w.addGroup(name, description, members...)
}

// AddMember is Store.AddMember inside the batch.
func (b *Batch) AddMember(group, member string) error { return b.w.addMember(group, member) }
