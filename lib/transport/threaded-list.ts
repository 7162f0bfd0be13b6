// A doubly-linked list threaded through its nodes' own prev/next fields: appending and removing allocate nothing.
// Two users: the sends a stream has handed to gRPC (pending-sends.ts: a Set gaining and losing an entry per message
// rehashed into old-space garbage, round 12) and the task board's load levels (orchestrator/task-board.ts: a worker
// moves between levels on every dispatch and result). A removed node's links are cleared, so nothing dead points at a
// live one. A node is in at most one list at a time; remove() trusts its caller that it is in this one.

export interface Threaded<N> {
  prev: N | undefined;
  next: N | undefined;
}

export class ThreadedList<N extends Threaded<N>> {
  head: N | undefined;
  tail: N | undefined;
  size = 0;

  append(node: N): void {
    node.prev = this.tail;
    node.next = undefined;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size++;
  }

  remove(node: N): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = undefined;
    this.size--;
  }
}
