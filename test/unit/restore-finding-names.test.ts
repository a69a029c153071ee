// A restore finding names the object pg_restore could not restore. Its "from TOC entry" line normally
// comes right before the error; with two --jobs workers their lines can interleave and the error
// arrives without it. The error's own words then name the table (seen once on a clean-clone run:
// the finding said only "restore").
import { entryNamedBy, type TocEntry } from '../../activities/pg/load-dump';

const toc: TocEntry[] = [
  { id: 10, line: '10; 1259 16390 TABLE public guarded postgres', what: 'TABLE public guarded' },
  { id: 20, line: '20; 0 16390 TABLE DATA public guarded postgres', what: 'TABLE DATA public guarded' },
  { id: 21, line: '21; 0 16391 TABLE DATA public plain postgres', what: 'TABLE DATA public plain' },
  { id: 22, line: '22; 0 16392 TABLE DATA app plain postgres', what: 'TABLE DATA app plain' },
  { id: 23, line: '23; 0 16393 TABLE DATA public Order Lines postgres', what: 'TABLE DATA public Order Lines' },
];

test('a COPY failure names its table data when the table name is unique in the dump', () => {
  expect(
    entryNamedBy(
      toc,
      'COPY failed for table "guarded": ERROR: permission denied to COPY to or from an external program',
    )?.what,
  ).toBe('TABLE DATA public guarded');
  expect(entryNamedBy(toc, 'COPY failed for table "Order Lines": ERROR: x')?.what).toBe(
    'TABLE DATA public Order Lines',
  );
});

test('an ambiguous name (two schemas) or another kind of error names nothing: the finding says "restore" rather than guess', () => {
  expect(entryNamedBy(toc, 'COPY failed for table "plain": ERROR: x')).toBeUndefined();
  expect(entryNamedBy(toc, 'function lifeboat_test_touch(integer) does not exist')).toBeUndefined();
});
