/* Deliberately broken builds (rig build --defect NAME, rig/build/defects.py): each stands for a
 * bug shipped update code has had, so the suite can prove it catches a broken firmware. A normal
 * build defines none of them. */
#ifndef RIG_DEFECTS_H
#define RIG_DEFECTS_H

#ifndef RIG_DEFECT_CONFIRM_NOT_PERSISTED
#define RIG_DEFECT_CONFIRM_NOT_PERSISTED 0 /* "confirmed" printed, image_ok never written */
#endif
#ifndef RIG_DEFECT_RESUME_WRONG_OFFSET
#define RIG_DEFECT_RESUME_WRONG_OFFSET 0 /* a resumed upload is told to go on one buffer ahead */
#endif
#ifndef RIG_DEFECT_SMP_MATCH_ALWAYS
#define RIG_DEFECT_SMP_MATCH_ALWAYS 0 /* the uploaded image's hash is never checked */
#endif
#ifndef RIG_DEFECT_SMP_TEST_IS_PERMANENT
#define RIG_DEFECT_SMP_TEST_IS_PERMANENT 0 /* image state write: a test request is taken as confirm */
#endif
#ifndef RIG_DEFECT_CONFIRM_BEFORE_HEALTH
#define RIG_DEFECT_CONFIRM_BEFORE_HEALTH 0 /* image_ok written before the health check */
#endif
#ifndef RIG_DEFECT_WATCHDOG_NEVER_BITES
#define RIG_DEFECT_WATCHDOG_NEVER_BITES 0 /* the independent watchdog is never started */
#endif
#ifndef RIG_DEFECT_INTERRUPTED_UPLOAD_BLOCKS_SLOT
#define RIG_DEFECT_INTERRUPTED_UPLOAD_BLOCKS_SLOT 0 /* a half-written slot 1 refuses every new upload */
#endif

#endif
